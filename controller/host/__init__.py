"""A room PC's host agent: card log-on through PAM, session locks, the operations log.

Pure decisions (logon.py, sessions.py, bursts.py, classify.py) and their boundaries (the PAM
socket, logind over D-Bus, the systemd journal, laurel's audit log), composed by agent.py and
run as a node by controller.host_agent.
"""
