"""The HTTP edge: what every request and socket message passes before any route sees it."""
