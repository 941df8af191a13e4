"""The LINE webhook inbox: events stored on arrival, processed by the worker, handlers
registered by domains (the chatbot registers the text handler)."""
