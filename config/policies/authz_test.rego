# Rego unit tests: `llmops policy test` runs every test_ rule.
package llmops.authz_test

import data.llmops.authz

base := {
	"version": "llmops.policy/v1",
	"subject": {"tenant": "research", "key_id": "k1", "roles": [], "claims": {}, "models": []},
	"action": "chat",
	"resource": {"model": "sim-chat", "modality": "text", "tools": []},
	"context": {"region": "local"},
}

test_allows_a_granted_model if authz.allow with input as base

test_denies_without_tenant if {
	not authz.allow with input as object.union(base, {"subject": {"tenant": ""}})
}

test_denies_a_model_outside_the_team if {
	reasons := authz.deny with input as object.union(base, {"resource": {"model": "gpt-5"}})
	reasons == {`team "research" may not use model "gpt-5"`}
}

test_key_grants_narrow_models if {
	doc := object.union(base, {"subject": {"models": ["sim-embed"]}})
	not authz.allow with input as doc
}

test_admin_needs_role if {
	not authz.allow with input as object.union(base, {"action": "admin"})
	authz.allow with input as object.union(base, {"action": "admin", "subject": {"roles": ["admin"]}})
}

test_trial_caps_tokens_and_tools if {
	doc := object.union(base, {"subject": {"roles": ["trial"]}, "resource": {"tools": ["web_search"]}})
	d := authz.decision with input as doc
	not d.allow
	d.obligations.max_tokens == 256
	d.obligations.allowed_tools == ["calculator"]
}

test_tool_call_egress if {
	call := object.union(base, {"action": "tool_call", "resource": {"tool": {"name": "web_search"}, "egress": ["evil.example"]}})
	not authz.allow with input as call
	ok := object.union(base, {"action": "tool_call", "resource": {"tool": {"name": "web_search"}, "egress": ["api.search.example.com"]}})
	authz.allow with input as ok
}

test_residency if {
	eu := object.union(base, {"subject": {"tenant": "eu-bank"}, "context": {"region": "eu-west"}})
	d := authz.decision with input as eu
	d.allow
	d.obligations.allowed_regions == ["eu-west"]
	not authz.allow with input as object.union(eu, {"context": {"region": "us-east"}})
}

test_a_question_without_a_model_is_not_a_model_question if {
	search := object.union(base, {"subject": {"tenant": "interns"}, "action": "rag_query",
		"resource": {"model": "", "vector_stores": ["vs_1"]}})
	authz.allow with input as search
	files := object.union(base, {"subject": {"tenant": "interns", "models": ["sim-chat"]}, "action": "files",
		"resource": {"model": ""}})
	authz.allow with input as files
	stored := object.union(base, {"subject": {"tenant": "interns"}, "action": "responses",
		"resource": {"model": "", "responses": ["resp_1"]}})
	authz.allow with input as stored
	conversations := object.union(base, {"subject": {"tenant": "interns"}, "action": "conversations",
		"resource": {"model": "", "conversations": []}})
	authz.allow with input as conversations
}

test_a_null_model_is_not_an_error if {
	doc := object.union(base, {"subject": {"tenant": "interns"}, "action": "rag_query", "resource": {"model": null}})
	authz.allow with input as doc
}
