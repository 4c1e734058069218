"""The attention lesson kind (``kind = "attention"``): one self-attention head trained by SGD rows.

Modules
  lesson    the template's lesson and the seeded sequences (find the value the key token carries)
  engine    numpy training: Q, K, V, scaled scores, a stable row-wise softmax, AV, mean-pooled read-out, MSE;
            the backward pass through the softmax's Jacobian, the products and the projections
  layout    sheet names and column positions, the Examples block (one row per example per step)
  rows      the Steps blocks (weights, batch-mean gradients, updates) and the Attention grid
  workbook  writing every sheet (build_attention_workbook)
"""
