"""The learned world model: SystemDynamicsEnsemble, replay buffer, training and evaluation."""
