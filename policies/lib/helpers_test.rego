package lib.helpers_test

import data.lib.helpers

test_present if {
	helpers.present({"a": false}, "a")
	helpers.present({"a": null}, "a")
	not helpers.present({"a": 1}, "b")
	not helpers.present("a", "a")
}

test_is_set if {
	helpers.is_set({"a": null}, "a")
	helpers.is_set({"a": 0}, "a")
	helpers.is_set({"a": ""}, "a")
	not helpers.is_set({"a": false}, "a")
	not helpers.is_set({}, "a")
}

test_get if {
	helpers.get({"a": 1}, "a", 2) == 1
	helpers.get({}, "a", 2) == 2
	helpers.get(null, "a", 2) == 2
}

test_is_string_array if {
	helpers.is_string_array([])
	helpers.is_string_array(["a"])
	not helpers.is_string_array(["a", 1])
	not helpers.is_string_array("a")
}

test_distinct_approvers if {
	helpers.distinct_approvers(["Alice", " alice ", "", "  ", "bob", 3]) == {"alice", "bob"}
	helpers.distinct_approvers(null) == set()
	helpers.distinct_approvers("alice") == set()
}

test_strip_heads if {
	helpers.strip_heads("refs/heads/main") == "main"
	helpers.strip_heads("refs/heads/refs/heads/main") == "refs/heads/main"
	helpers.strip_heads("main") == "main"
}

test_glob_match if {
	helpers.glob_match("release/*", "release/1")
	not helpers.glob_match("release/*", "release/1/x")
	helpers.glob_match("release/**", "release/1/x")
	helpers.glob_match("feature/*", "feature/")
	helpers.glob_match("{main,develop}", "develop")
	helpers.glob_match("v?", "v1")
	helpers.glob_match("[a-c]x", "bx")
	not helpers.glob_match("[!a]x", "ax")
	not helpers.glob_match("main", "Main")
	not helpers.glob_match("main", null)
	not helpers.glob_match(1, "main")
}

test_show if {
	helpers.show("a") == "a"
	helpers.show(null) == "null"
	helpers.show(["a"]) == "[\"a\"]"
}
