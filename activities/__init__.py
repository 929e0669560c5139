"""Every side effect of a process: audited ERP writes, notifications, queries."""
