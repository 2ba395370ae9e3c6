"""chatmock: a local gateway serving OpenAI, Anthropic and Ollama APIs from a ChatGPT account."""

__version__ = "0.1.0"
