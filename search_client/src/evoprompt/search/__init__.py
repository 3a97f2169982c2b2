"""The EvoPrompting search client: the paper's evolutionary loop with an LM as the crossover and
mutation operator, LM back-ends, soft-prompt tuning between rounds, run storage and reports."""
