"""Reliability and security: bad-input matrix, fuzzing, crash safety, safe loading (issue 9)."""
