package github.wip_test

import data.github.wip

test_wip_title_denied if {
	not wip.allow with input as {"pull_request": {"title": "WIP: new login page"}, "config": {"prefixes": ["WIP"]}}
}

test_prefix_any_case if {
	some v in wip.violations with input as {"pull_request": {"title": "wip login"}, "config": {"prefixes": ["WIP"]}}
	v.code == "pr.wip"
}

test_finished_title_allowed if {
	wip.allow with input as {"pull_request": {"title": "New login page"}, "config": {"prefixes": ["WIP", "Draft:"]}}
}
