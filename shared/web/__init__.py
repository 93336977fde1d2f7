"""HTTP: the service app and its errors, tokens, the input guard, health, metrics, serving."""
