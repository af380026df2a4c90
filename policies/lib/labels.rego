# METADATA
# title: Labels
# description: |-
#   The pull request's labels (input.pull_request.labels, [{name}]),
#   compared case-insensitively as GitHub and policy-bot compare them.
package lib.labels

# names is the set of label names, lower-cased. Plain strings count as
# names too; anything but an array or set yields the empty set.
names(labels) := {lower(n) |
	some l in labels
	n := name(l)
} if collection(labels)

names(labels) := set() if not collection(labels)

# has holds when the pull request carries the label.
has(labels, label) if {
	is_string(label)
	lower(label) in names(labels)
}

# any_of holds when the pull request carries at least one of the labels.
any_of(labels, wanted) if {
	some label in wanted
	has(labels, label)
}

# all_of holds when the pull request carries every one of the labels, and
# there is at least one (policy-bot's has_labels).
all_of(labels, wanted) if {
	collection(wanted)
	count(wanted) > 0
	every label in wanted {
		has(labels, label)
	}
}

# missing is the set of the wanted labels the pull request does not carry.
missing(labels, wanted) := {label |
	some label in wanted
	not has(labels, label)
}

name(l) := l if is_string(l)

name(l) := n if {
	is_object(l)
	n := object.get(l, "name", null)
	is_string(n)
}

collection(x) if is_array(x)

collection(x) if is_set(x)
