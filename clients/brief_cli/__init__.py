"""The `brief` command, Brief's API client and the operator's dead-letter tool.

Works against any Brief stack, deployed or local, and imports no emulator code: the commands
that run the local stack (`brief local`, `demo`, `chaos`, `invoke`) import it when they run.
"""
