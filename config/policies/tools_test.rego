# Rego unit tests for upstream MCP tools (tools.rego): `llmops policy test` runs every test_ rule.
package llmops.tools_test

import data.llmops.authz

mcp_data := {"mcp": {"servers": {
	"everything": {"deny_tools": ["get-env"]},
	"files": {"tools": ["read_file"], "roles": ["agent"]},
}}}

call(server, tool, roles) := {
	"version": "llmops.policy/v1",
	"subject": {"tenant": "research", "key_id": "k1", "roles": roles, "claims": {}, "models": []},
	"action": "tool_call",
	"resource": {
		"model": "", "modality": "text", "tools": [sprintf("%s__%s", [server, tool])],
		"tool": {"name": sprintf("%s__%s", [server, tool]), "runtime": "mcp", "server": server, "upstream_tool": tool},
		"arguments": {}, "secrets": [], "egress": [],
	},
	"context": {"region": "local"},
}

test_an_unlisted_server_is_denied if {
	reasons := authz.deny with input as call("everything", "echo", []) with data.policy as {}
	reasons == {`MCP server "everything" is not allowed by the policy`}
}

test_a_listed_server_allows_its_tools if {
	authz.allow with input as call("everything", "echo", []) with data.policy as mcp_data
}

test_deny_tools_are_refused if {
	reasons := authz.deny with input as call("everything", "get-env", []) with data.policy as mcp_data
	reasons == {`tool "get-env" of MCP server "everything" is not allowed`}
}

test_tools_narrow_a_server if {
	authz.allow with input as call("files", "read_file", ["agent"]) with data.policy as mcp_data
	not authz.allow with input as call("files", "write_file", ["agent"]) with data.policy as mcp_data
}

test_roles_narrow_a_server if {
	reasons := authz.deny with input as call("files", "read_file", ["trial"]) with data.policy as mcp_data
	reasons == {`MCP server "files" is not allowed for roles ["trial"]`}
}

test_other_tools_are_not_mcp_questions if {
	doc := object.union(call("x", "y", []), {"resource": {"tool": {"name": "python", "runtime": "python"}}})
	authz.allow with input as json.remove(doc, ["resource/tool/server", "resource/tool/upstream_tool"])
		with data.policy as {}
}
