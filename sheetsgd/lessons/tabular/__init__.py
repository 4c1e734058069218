"""Tabular lessons (kind ``tabular``, formerly ``titanic``): logistic regression, MLPs, softmax and dropout
over a table of examples — the Titanic passengers, the Palmer penguins.
"""
