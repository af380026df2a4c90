# METADATA
# title: Changed files
# description: |-
#   Which changed files match path patterns: policy-bot's changed_files,
#   only_changed_files and no_changed_files predicates, with globs in place
#   of regular expressions. Each function takes the files fact
#   (input.files, [{filename, previous_filename?, ...}]) as an argument.
#
#   A path is the file's path from the repository root, as GitHub lists it
#   (no leading "/"). A renamed file has two paths, its new filename and
#   its previous_filename: moving a file out of infra/ changes infra/.
#
#   Pattern syntax (the whole path must match, case-sensitively; "/" is the
#   only delimiter):
#     *       any run of characters within one directory (no "/")
#     **      any run of characters, "/" included: infra/** is everything
#             below infra/, **.md every .md file at any depth
#     **/     zero or more directories: **/*.tf matches main.tf and
#             infra/main.tf, infra/**/*.tf matches infra/main.tf
#     ?       one character other than "/"
#     [abc]   one of the characters; [a-z] a range; [!a-z] none of them
#     {a,b}   either pattern: {docs/**,*.md}
#     \*      a literal * (any special character after \)
#   A leading "/" is dropped (/infra/** is infra/**) and a trailing "/"
#   means everything below it (infra/ is infra/**), as CODEOWNERS writes
#   them. A pattern that is not a string matches nothing; one that does not
#   parse (an unclosed [ or {) is an evaluation error, which gitpoli
#   reports as engine.error and denies.
package lib.files

# match holds when path matches the glob pattern (syntax above).
match(pattern, path) if {
	is_string(pattern)
	is_string(path)
	glob.match(expand(pattern), ["/"], path)
}

# expand rewrites the CODEOWNERS-style shorthands into OPA's glob syntax:
# a trailing "/" becomes "/**", and "**/" may match no directory at all.
expand(pattern) := replace(below(trim_prefix(pattern, "/")), "**/", "{,**/}")

below(p) := concat("", [p, "**"]) if endswith(p, "/")

below(p) := p if not endswith(p, "/")

# paths is the set of paths the files touch: each filename, and the
# previous filename of a rename. Anything but an array yields the empty
# set.
paths(files) := {p |
	some f in files
	some key in ["filename", "previous_filename"]
	p := object.get(f, key, null)
	is_string(p)
	p != ""
} if is_array(files)

paths(files) := set() if not is_array(files)

# matching is the set of paths that match at least one of the patterns.
matching(files, patterns) := {p |
	some p in paths(files)
	matches_any(patterns, p)
}

# not_matching is the set of paths that match none of the patterns.
not_matching(files, patterns) := {p |
	some p in paths(files)
	not matches_any(patterns, p)
}

# any_match holds when some changed path matches some pattern
# (policy-bot's changed_files).
any_match(files, patterns) if count(matching(files, patterns)) > 0

# only_match holds when files change something and every path matches
# some pattern (policy-bot's only_changed_files: no files is not "only").
only_match(files, patterns) if {
	count(paths(files)) > 0
	count(not_matching(files, patterns)) == 0
}

# none_match holds when no changed path matches any pattern
# (policy-bot's no_changed_files).
none_match(files, patterns) if count(matching(files, patterns)) == 0

# matches_any holds when path matches one of patterns, an array or set of
# globs (a single string is taken as one pattern).
matches_any(patterns, path) if {
	is_string(patterns)
	match(patterns, path)
}

matches_any(patterns, path) if {
	not is_string(patterns)
	some pattern in patterns
	match(pattern, path)
}
