"""The Minor Planet Center's formats: packed designations and dates
(:mod:`xmatch.sso.mpc.designations`) and the fixed-width orbit files
(:mod:`xmatch.sso.mpc.readers`)."""
