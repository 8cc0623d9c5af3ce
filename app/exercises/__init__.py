"""Exercises, teams, participants and injects, and the exercise state machine."""
