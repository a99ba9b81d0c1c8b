"""Train an MLP, prune it without retraining, and measure what sparsity costs and buys."""
