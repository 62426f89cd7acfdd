"""Framework adapters, shipped as `mlcheck.integrations`: thin translations of framework events
into mlcheck observations, and `Trainable` implementations. No check logic lives here."""
