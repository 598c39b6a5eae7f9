"""Who may call the API: OAuth2 client credentials, bearer tokens, per-client rate limits."""
