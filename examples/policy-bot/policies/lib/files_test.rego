package lib.files_test

import data.lib.files

changed := [
	{"filename": "infra/terraform/main.tf", "status": "modified"},
	{"filename": "docs/guide.md", "status": "added"},
	{"filename": "README.md", "status": "modified"},
]

docs_only := [
	{"filename": "docs/guide.md", "status": "added"},
	{"filename": "README.md", "status": "modified"},
]

moved_out_of_infra := [{"filename": "docs/old-network.md", "previous_filename": "infra/network.md", "status": "renamed"}]

test_match_star_stays_in_a_directory if {
	files.match("infra/*", "infra/main.tf")
	not files.match("infra/*", "infra/terraform/main.tf")
	not files.match("*.md", "docs/guide.md")
	files.match("*.md", "README.md")
}

test_match_double_star_crosses_directories if {
	files.match("infra/**", "infra/terraform/main.tf")
	files.match("**.md", "docs/a/b.md")
	files.match("**.md", "README.md")
	files.match("**", "any/path/at/all")
	not files.match("infra/**", "infrastructure/main.tf")
}

test_match_double_star_slash_may_be_no_directory if {
	files.match("**/*.tf", "main.tf")
	files.match("**/*.tf", "infra/terraform/main.tf")
	files.match("infra/**/*.tf", "infra/main.tf")
	files.match("infra/**/*.tf", "infra/a/b/main.tf")
	not files.match("infra/**/*.tf", "infra/main.tf.bak")
}

test_match_whole_path_case_sensitive if {
	not files.match("infra", "infra/main.tf")
	not files.match("Infra/**", "infra/main.tf")
	not files.match("main.tf", "infra/main.tf")
}

test_match_classes_alternatives_escapes if {
	files.match("v?.txt", "v1.txt")
	not files.match("v?.txt", "v/.txt")
	files.match("[a-c]*.go", "b_test.go")
	not files.match("[!a-c]*.go", "b_test.go")
	files.match("{docs/**,*.md}", "README.md")
	files.match("{docs/**,*.md}", "docs/x/y.png")
	files.match("a\\*b", "a*b")
	not files.match("a\\*b", "axb")
}

test_match_codeowners_slashes if {
	files.match("/infra/**", "infra/main.tf")
	files.match("infra/", "infra/terraform/main.tf")
	files.match("/infra/", "infra/main.tf")
	not files.match("infra/", "infra")
}

test_match_non_strings if {
	not files.match(null, "a")
	not files.match(["a"], "a")
	not files.match("a", 1)
}

test_paths if {
	files.paths(changed) == {"infra/terraform/main.tf", "docs/guide.md", "README.md"}
	files.paths(moved_out_of_infra) == {"docs/old-network.md", "infra/network.md"}
	files.paths([{"filename": ""}, {"status": "added"}, "x", 3]) == set()
	files.paths(null) == set()
	files.paths({"filename": "a"}) == set()
}

test_matching if {
	files.matching(changed, ["infra/**"]) == {"infra/terraform/main.tf"}
	files.matching(changed, ["docs/**", "*.md"]) == {"docs/guide.md", "README.md"}
	files.matching(changed, "infra/**") == {"infra/terraform/main.tf"}
	files.matching(changed, []) == set()
	files.matching(changed, null) == set()
	files.not_matching(changed, ["docs/**", "**.md"]) == {"infra/terraform/main.tf"}
	files.not_matching(changed, []) == files.paths(changed)
}

test_any_match if {
	files.any_match(changed, ["infra/**"])
	not files.any_match(docs_only, ["infra/**"])
	not files.any_match([], ["**"])
	not files.any_match(null, ["**"])
}

test_any_match_sees_a_rename_out if {
	files.any_match(moved_out_of_infra, ["infra/**"])
}

test_only_match if {
	files.only_match(docs_only, ["docs/**", "**.md"])
	not files.only_match(changed, ["docs/**", "**.md"])
	not files.only_match(moved_out_of_infra, ["docs/**"])
}

test_only_match_needs_a_file if {
	not files.only_match([], ["**"])
	not files.only_match(null, ["**"])
}

test_none_match if {
	files.none_match(docs_only, ["infra/**"])
	not files.none_match(changed, ["infra/**"])
	files.none_match([], ["**"])
	not files.none_match(moved_out_of_infra, ["infra/**"])
}
