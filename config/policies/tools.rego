# Tools per role, egress and secrets per tool.
package llmops.authz

requested_tools contains name if some name in object.get(input.resource, "tools", [])

requested_tools contains input.resource.tool.name if input.action == "tool_call"

# A caller's tools are constrained when any of its roles lists tools.
tools_constrained if {
	some role in input.subject.roles
	data.policy.roles[role].tools
}

allowed_tools contains tool if {
	some role in input.subject.roles
	some tool in data.policy.roles[role].tools
}

default allowed_tools_obligation := null

allowed_tools_obligation := sort(allowed_tools) if tools_constrained

deny contains sprintf("tool %q is not allowed for roles %v", [tool, input.subject.roles]) if {
	tools_constrained
	some tool in requested_tools
	not tool in allowed_tools
}

# Egress hosts and secrets a tool may use (only for the tools requested).
allowed_egress contains host if {
	some tool in requested_tools
	some host in data.policy.tools[tool].egress
}

allowed_secrets contains secret if {
	some tool in requested_tools
	some secret in data.policy.tools[tool].secrets
}

deny contains sprintf("tool %q may not reach %q", [input.resource.tool.name, host]) if {
	input.action == "tool_call"
	some host in object.get(input.resource, "egress", [])
	not host in allowed_egress
}

deny contains sprintf("tool %q may not use secret %q", [input.resource.tool.name, secret]) if {
	input.action == "tool_call"
	some secret in object.get(input.resource, "secrets", [])
	not secret in allowed_secrets
}

# Upstream MCP servers' tools (resource.tool.runtime "mcp"; the tool names its server and its name there).
# Deny by default: a server is usable only when data.policy.mcp.servers lists it. Its entry may narrow it:
# "tools" (the upstream tools allowed; absent = all), "deny_tools" (refused even so) and "roles" (only
# callers with one of these roles; absent = any caller).
mcp_call if {
	input.action == "tool_call"
	input.resource.tool.runtime == "mcp"
}

mcp_server := input.resource.tool.server if mcp_call

mcp_tool := input.resource.tool.upstream_tool if mcp_call

mcp_rules := data.policy.mcp.servers[mcp_server]

deny contains sprintf("MCP server %q is not allowed by the policy", [mcp_server]) if {
	mcp_call
	not data.policy.mcp.servers[mcp_server]
}

deny contains sprintf("tool %q of MCP server %q is not allowed", [mcp_tool, mcp_server]) if {
	rules := mcp_rules
	not mcp_tool in object.get(rules, "tools", [mcp_tool])
}

deny contains sprintf("tool %q of MCP server %q is not allowed", [mcp_tool, mcp_server]) if {
	rules := mcp_rules
	mcp_tool in object.get(rules, "deny_tools", [])
}

deny contains sprintf("MCP server %q is not allowed for roles %v", [mcp_server, input.subject.roles]) if {
	roles := mcp_rules.roles
	count({r | some r in input.subject.roles; r in roles}) == 0
}
