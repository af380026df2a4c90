package workbench

import (
	"encoding/json"
	"fmt"
	"strings"
)

// SyntheticDelivery builds the delivery GitHub would send for a pull
// request fetched from the API: a synchronize, or with an environment a
// deployment protection request for its head. Replaying a live pull
// request decides it as serve would decide that delivery.
func SyntheticDelivery(pr PullRequestInfo, environment string) Delivery {
	labels := make([]any, len(pr.Labels))
	for i, l := range pr.Labels {
		labels[i] = map[string]any{"name": l}
	}
	prPayload := map[string]any{
		"number":             pr.Number,
		"state":              pr.State,
		"title":              pr.Title,
		"body":               pr.Body,
		"draft":              pr.Draft,
		"labels":             labels,
		"author_association": pr.AuthorAssociation,
		"user":               map[string]any{"login": pr.Author},
		"head":               map[string]any{"ref": pr.HeadRef, "label": pr.HeadLabel, "sha": pr.HeadSHA, "repo": map[string]any{"full_name": pr.HeadRepo}},
		"base":               map[string]any{"ref": pr.BaseRef, "sha": pr.BaseSHA, "repo": map[string]any{"full_name": pr.Repo.String()}},
	}
	for key, n := range map[string]*int{"additions": pr.Additions, "deletions": pr.Deletions, "changed_files": pr.ChangedFiles} {
		if n != nil {
			prPayload[key] = *n
		}
	}
	repo := map[string]any{"full_name": pr.Repo.String(), "name": pr.Repo.Name, "owner": map[string]any{"login": pr.Repo.Owner}, "default_branch": pr.BaseRef}
	id := fmt.Sprintf("replay-%s-%d", strings.ReplaceAll(pr.Repo.String(), "/", "-"), pr.Number)
	if environment == "" {
		body, _ := json.Marshal(map[string]any{"action": "synchronize", "number": pr.Number, "pull_request": prPayload, "repository": repo})
		return Delivery{Event: "pull_request", ID: id, Payload: body}
	}
	body, _ := json.Marshal(map[string]any{
		"action":        "requested",
		"environment":   environment,
		"event":         "pull_request",
		"deployment":    map[string]any{"ref": pr.HeadRef, "sha": pr.HeadSHA, "environment": environment},
		"pull_requests": []any{prPayload},
		"repository":    repo,
	})
	return Delivery{Event: "deployment_protection_rule", ID: id, Payload: body}
}

// ActionsDelivery turns the event that started a GitHub Actions workflow
// into the delivery gitpoli decides: a pull request as it is; a
// deployment as the protection-rule request it stands for. False for an
// event that stands for no delivery gitpoli decides.
func ActionsDelivery(event string, payload []byte) (Delivery, bool) {
	switch event {
	case "pull_request", "pull_request_target":
		return Delivery{Event: "pull_request", ID: "actions", Payload: payload}, true
	case "pull_request_review":
		return Delivery{Event: event, ID: "actions", Payload: payload}, true
	case "deployment":
		var p map[string]any
		if json.Unmarshal(payload, &p) != nil {
			return Delivery{}, false
		}
		dep, _ := p["deployment"].(map[string]any)
		body, _ := json.Marshal(map[string]any{
			"action":        "requested",
			"environment":   dep["environment"],
			"deployment":    dep,
			"repository":    p["repository"],
			"sender":        p["sender"],
			"pull_requests": []any{},
		})
		return Delivery{Event: "deployment_protection_rule", ID: "actions", Payload: body}, true
	}
	return Delivery{}, false
}
