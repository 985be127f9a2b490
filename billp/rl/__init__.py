"""RL recommenders on the simulators: SQN-style LEA (state, reward and actions from the LE) and
the paper's RL baselines through Tianshou (BCQ, CQL, CRR offline; DQN, A2C online).

Heavy modules (torch, Tianshou, the LE) are imported by the submodules that need them.
"""
