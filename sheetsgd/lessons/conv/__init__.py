"""The convolution lesson kind (``kind = "conv"``): a small CNN trained by SGD, one formula row per step.

Modules
  lesson    the template's lesson and the seeded images of bars (horizontal or vertical) it trains on
  engine    numpy training: valid 3×3 cross-correlation, ReLU, a dense layer, sigmoid, cross-entropy
  layout    the Steps sheet's columns and the blocks of every sheet (row patterns, fields, engine values)
  views     the grids drawn from the Steps rows: filters, feature maps, the images as pictures
  workbook  writing every sheet (build_conv_workbook)
  mistakes  the catalogue's edits for a convolution (filter flipped, window off by one)
"""
