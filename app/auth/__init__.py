"""Facilitator accounts, login tokens, join codes and participant tokens."""
