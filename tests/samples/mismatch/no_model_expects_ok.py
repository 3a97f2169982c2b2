# evoprompt: expect=OK task=mnist1d framework=torch max-steps=30
# says it trains, but defines no Model: a smoke test must catch it
import torch


class Net(torch.nn.Module):
    def forward(self, x):
        return x
