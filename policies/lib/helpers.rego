# Helpers shared by the deploy and pull-request policies.
#
# Every check here is total: it is defined (true or false) for any value,
# including an absent one, so that a rule built on it can never be skipped
# because a fact is missing. That is what keeps the policies fail-closed.
package lib.helpers

# present holds when obj is an object that has key, whatever its value.
present(obj, key) if {
	is_object(obj)
	key in object.keys(obj)
}

# is_set holds when key is present and its value is not false
# (null, 0 and "" count as set).
is_set(obj, key) if {
	present(obj, key)
	obj[key] != false
}

# get returns obj[key], or def when obj is not an object or has no key.
get(obj, key, def) := object.get(obj, key, def) if is_object(obj)

get(obj, _, def) := def if not is_object(obj)

# is_string_array holds for an array whose elements are all strings.
is_string_array(x) if {
	is_array(x)
	every e in x {
		is_string(e)
	}
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

# glob_match matches s against pattern with "/" as the only delimiter:
# "*" stays within a path segment, "**" crosses segments. Non-strings and
# invalid patterns match nothing.
glob_match(pattern, s) if {
	is_string(pattern)
	is_string(s)
	glob.match(pattern, ["/"], s)
}

# show renders a value for a message: strings as they are, anything else
# (including an absent value, passed as null by callers) as JSON.
show(x) := x if is_string(x)

show(x) := json.marshal(x) if not is_string(x)
