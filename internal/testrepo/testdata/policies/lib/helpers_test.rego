package lib.helpers_test

import data.lib.helpers

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

test_is_null_or_string_array if {
	helpers.is_null_or_string_array(null)
	helpers.is_null_or_string_array(["main"])
	not helpers.is_null_or_string_array(false)
	not helpers.is_null_or_string_array("main")
	not helpers.is_null_or_string_array([1])
}

test_string_in if {
	helpers.string_in(["a", "b"], "b")
	not helpers.string_in(["a"], "b")
	not helpers.string_in("a", "a")
	not helpers.string_in({"x": "a"}, "a")
	not helpers.string_in([null], null)
}

test_branch_name if {
	helpers.branch_name("refs/heads/feature/x") == "feature/x"
	helpers.branch_name(false) == null
}

test_shown_ref if {
	helpers.shown_ref({"r": "refs/heads/x"}, "r") == "x"
	helpers.shown_ref({"r": false}, "r") == "false"
	helpers.shown_ref({}, "r") == "(missing)"
	helpers.shown_branch("refs/heads/x") == "x"
	helpers.shown_branch(false) == "false"
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
