"""The Responses API's shapes over chat completions (pure): a Responses request as a chat request
(``responses_request``), a chat completion as a Response (``responses_object``), and chat chunks as
Responses stream events (``responses_stream``); and the gateway's file search shown in a Response
(``responses_citations``). Used by the router's backends and the tools stage."""
