# Helpers shared by the deploy and pull-request policies.
#
# Every helper is total: it is defined for any value it is given, so a rule
# built on it is never skipped because a value has the wrong type.
package lib.helpers

# is_string_array holds for an array whose elements are all strings.
is_string_array(x) if {
	is_array(x)
	every e in x {
		is_string(e)
	}
}

# is_null_or_string_array holds for null or an array of strings.
is_null_or_string_array(x) if x == null

is_null_or_string_array(x) if is_string_array(x)

# string_in holds when list is an array that contains the string s.
string_in(list, s) if {
	is_array(list)
	is_string(s)
	s in list
}

# distinct_approvers is the set of approver logins in x, trimmed and
# lower-cased (GitHub logins are case-insensitive), with empty entries and
# non-strings dropped. Anything but an array yields the empty set.
distinct_approvers(x) := {lower(trim_space(a)) |
	some a in x
	is_string(a)
	trim_space(a) != ""
} if is_array(x)

distinct_approvers(x) := set() if not is_array(x)

# strip_heads removes one leading "refs/heads/" from a branch reference.
strip_heads(ref) := trim_prefix(ref, "refs/heads/")

# branch_name is the branch a ref names, or null when ref is not a string.
branch_name(ref) := strip_heads(ref) if is_string(ref)

branch_name(ref) := null if not is_string(ref)

# glob_match matches s against pattern with "/" as the only delimiter:
# "*" stays within a path segment, "**" crosses segments. Non-strings and
# invalid patterns match nothing.
glob_match(pattern, s) if {
	is_string(pattern)
	is_string(s)
	glob.match(pattern, ["/"], s)
}

# show renders a value for a message: strings as they are, anything else
# as JSON.
show(x) := x if is_string(x)

show(x) := json.marshal(x) if not is_string(x)

# shown_ref renders doc[key] as a branch name for a message: "(missing)"
# when absent, JSON when not a string.
shown_ref(doc, key) := branch_name(doc[key]) if is_string(doc[key])

shown_ref(doc, key) := json.marshal(doc[key]) if not is_string(doc[key])

shown_ref(doc, key) := "(missing)" if not key in object.keys(doc)

# shown_branch renders a ref for a message as shown_ref does, from the
# value alone: a caller that reads input.head_ref itself reads that one
# key, where passing the whole input reads all of it (and gitpoli gathers
# every fact for a policy that does).
shown_branch(ref) := branch_name(ref) if is_string(ref)

shown_branch(ref) := json.marshal(ref) if not is_string(ref)
