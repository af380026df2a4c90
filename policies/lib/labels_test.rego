package lib.labels_test

import data.lib.labels

given := [{"name": "Skip-Review"}, {"name": "bug"}]

test_names if {
	labels.names(given) == {"skip-review", "bug"}
	labels.names(["Docs", {"name": 3}, null]) == {"docs"}
	labels.names(null) == set()
	labels.names({"name": "bug"}) == set()
}

test_has if {
	labels.has(given, "skip-review")
	labels.has(given, "BUG")
	not labels.has(given, "docs")
	not labels.has(given, null)
	not labels.has([], "bug")
}

test_any_of if {
	labels.any_of(given, ["docs", "skip-review"])
	not labels.any_of(given, ["docs"])
	not labels.any_of(given, [])
	not labels.any_of(given, null)
}

test_all_of if {
	labels.all_of(given, ["skip-review", "bug"])
	labels.all_of(given, {"bug"})
	not labels.all_of(given, ["skip-review", "docs"])
	not labels.all_of(given, [])
	not labels.all_of(given, "bug")
}

test_missing if {
	labels.missing(given, ["skip-review", "docs"]) == {"docs"}
	labels.missing(given, ["bug"]) == set()
}
