"""The collab-filter lesson kind (``kind = "collab"``): collaborative filtering by full-batch gradient steps.

Modules
  lesson    the template's lesson and the seeded ratings generated from known tastes
  engine    numpy training: embeddings + biases, y_range, MSE on the rated cells, weight decay
  layout    sheet names, row and column positions, the Users/Movies and Predictions blocks
  rows      the Ratings, Train, HeldBack, Loss and Solver blocks
  workbook  writing every sheet (build_collab_workbook)
  frames    the sheets' numbers as DataFrames for the Python API
"""
