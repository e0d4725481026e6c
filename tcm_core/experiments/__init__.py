"""Experiments over many runs: studies (every loss x batch size x seed, with and without TCM)
and margin searches, and what they say together."""
