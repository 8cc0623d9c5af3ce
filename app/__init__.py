"""Live incident-response tabletop exercises for the JNSA CISO handbook workshop."""
