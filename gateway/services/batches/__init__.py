"""OpenAI's Batch API: input files checked line by line, batches run as durable jobs (``gateway/services/jobs``)."""
