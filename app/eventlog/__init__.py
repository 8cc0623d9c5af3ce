"""The exercise event log: the ordered, stored record of every change, and its wire form."""
