"""Every call to an LLM: the model catalog, providers (Anthropic, OpenAI and compatible servers, the offline judge),
the engine (retries, limiter), one concurrent-ask helper, the call ledger and the result cache.

It knows nothing of runs, evaluations or guardrails: callers pass a request, a validator and what to record.
"""
