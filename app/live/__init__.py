"""The exercise event log, the hub that fans events out, and the websocket endpoints."""
