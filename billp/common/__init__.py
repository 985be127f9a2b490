"""What every layer may use and that imports none of them: crash-safe writes and the fault
hook behind them, cache and model paths, model provisioning, the numeric environment, the
template sandbox, torch thread settings and exit codes."""
