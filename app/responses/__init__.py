"""The matrix fields, versioned cells, their revision history and submissions."""
