"""The debrief: side-by-side answers, timings, the facilitator's evaluation and improvement plan."""
