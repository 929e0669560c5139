"""Server-rendered pages: login, inbox, task, processes, delegations, audit viewer."""
