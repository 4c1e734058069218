"""The catalogue of common mistakes: each with its hint, the edit it makes to a correct pattern, and how a
root cause is named.
"""
