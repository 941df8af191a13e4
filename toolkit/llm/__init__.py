"""The LLM adapter: any OpenAI-compatible endpoint through the `openai` SDK.

It knows models, not our domains (like toolkit.line, it imports no domain): client
(embeddings and chat completions, one exception for every failure), masking (personal
identifiers out of customer text before it leaves), notice (the privacy notice's sentence
naming the processor), fake (a loopback OpenAI-compatible server for tests and the demo).

Importing this package is cheap; the SDK loads with toolkit.llm.client.
"""
