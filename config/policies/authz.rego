# The gateway's default policy. Input: the llmops.policy/v1 document (gateway/policy/types.py).
# Output: data.llmops.authz.decision = {"allow", "reasons", "obligations"}.
# Deny overrides: a request is allowed when no `deny` rule fires. Tables live in data.json
# (data.policy.*): a team, role or tool that is not listed there is not constrained.
package llmops.authz

default allow := false

allow if count(deny) == 0

decision := {
	"allow": allow,
	"reasons": sort(deny),
	"obligations": {
		"allowed_tools": allowed_tools_obligation,
		"allowed_secrets": sort(allowed_secrets),
		"allowed_egress": sort(allowed_egress),
		"allowed_regions": allowed_regions,
		"max_tokens": max_tokens_cap,
		"redact": sort(redact),
	},
}

# --- who ---------------------------------------------------------------------------------

deny contains "the caller is not authenticated" if object.get(input, ["subject", "tenant"], "") == ""

deny contains "the admin API needs the admin role" if {
	input.action == "admin"
	not "admin" in input.subject.roles
}

# --- models per key and per team --------------------------------------------------------
# Only questions about a model: a request's canonical model, a fallback or an auto candidate, a
# listed model. Actions with no model (files, vector stores, stored responses, conversations, admin;
# "auto" before the router picks)
# carry model "" and are not constrained here.

requested_model := m if {
	m := object.get(input.resource, "model", "")
	is_string(m)
	m != ""
}

deny contains sprintf("model %q is not granted to key %q", [requested_model, input.subject.key_id]) if {
	count(object.get(input.subject, "models", [])) > 0
	not granted(input.subject.models, requested_model)
}

deny contains sprintf("team %q may not use model %q", [input.subject.tenant, requested_model]) if {
	team_models := data.policy.teams[input.subject.tenant].models
	not granted(team_models, requested_model)
}

granted(patterns, model) if {
	some pattern in patterns
	glob.match(pattern, [], model)
}
