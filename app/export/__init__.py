"""The debrief workbook (XLSX in the workshop layout) and the lossless JSON archive."""
