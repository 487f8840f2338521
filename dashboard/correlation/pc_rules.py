"""The room PCs' rule names (their logic: host_rules.py); ``rules.RULES`` lists them too."""

PC_NOT_IN_ROOM = "pc_logon_not_in_room"
PC_AFTER_EXIT = "pc_session_after_exit"
PC_FILES_WITHOUT_ACCESS = "pc_number_files_without_access"
PC_SUDO_NOT_ADMIN = "pc_sudo_without_admin"
PC_OUTSIDE_HOURS = "pc_logon_outside_hours"
PC_TWO_HOSTS = "pc_account_on_two_hosts"
PC_FAILED_LOGINS = "pc_failed_logins"
PC_PRESENCE_UNKNOWN = "pc_presence_unknown"
PC_BREAK_GLASS = "pc_break_glass"
HOST_RULES = (PC_NOT_IN_ROOM, PC_AFTER_EXIT, PC_FILES_WITHOUT_ACCESS, PC_SUDO_NOT_ADMIN,
              PC_OUTSIDE_HOURS, PC_TWO_HOSTS, PC_FAILED_LOGINS, PC_PRESENCE_UNKNOWN,
              PC_BREAK_GLASS)
