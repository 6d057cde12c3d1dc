"""Talking to the Hugging Face Hub: the calls provisioning makes, what their errors mean, the token.

`client` is the Protocol of the `HfApi` methods the kit calls (the real library and the test
fake both satisfy it) and the error mapping where only "not found" means absent; `credentials`
finds the organizers' token and checks who it is; `token_scopes` reads what it may do. Imports
only `provision.errors`; the plan engine and the command line build on it.
"""
