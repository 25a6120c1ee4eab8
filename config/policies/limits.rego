# Data residency, output caps and redaction: obligations the gateway enforces after an allow.
package llmops.authz

default allowed_regions := null

allowed_regions := data.policy.teams[input.subject.tenant].regions

deny contains sprintf("tenant %q may not be served in region %q", [input.subject.tenant, input.context.region]) if {
	allowed_regions != null
	not input.context.region in allowed_regions
}

role_caps contains cap if {
	some role in input.subject.roles
	cap := data.policy.roles[role].max_tokens
}

default max_tokens_cap := null

max_tokens_cap := min(role_caps) if count(role_caps) > 0

redact contains kind if {
	some role in input.subject.roles
	some kind in data.policy.roles[role].redact
}
