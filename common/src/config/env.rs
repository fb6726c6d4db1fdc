//! Reading variables: required, defaulted, parsed, positive, durations, booleans, fee rules,
//! tokens. Every failure names the variable, never its value.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use super::{ConfigError, Secret};
use crate::domain::money::{BasisPoints, FeeRule};

/// Reads variables through a lookup function so tests need not touch the process environment.
pub(super) struct Env<F: Fn(&str) -> Option<String>>(pub(super) F);

impl<F: Fn(&str) -> Option<String>> Env<F> {
    pub(super) fn raw(&self, var: &'static str) -> Option<String> {
        (self.0)(var).filter(|v| !v.trim().is_empty())
    }

    pub(super) fn required(&self, var: &'static str) -> Result<String, ConfigError> {
        self.raw(var).ok_or(ConfigError::Missing(var))
    }

    pub(super) fn string(&self, var: &'static str, default: &str) -> String {
        self.raw(var).unwrap_or_else(|| default.to_owned())
    }

    pub(super) fn parse<T>(&self, var: &'static str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        match self.raw(var) {
            None => Ok(default),
            Some(v) => v.trim().parse().map_err(|e: T::Err| ConfigError::Invalid {
                var,
                reason: e.to_string(),
            }),
        }
    }

    pub(super) fn positive<T>(&self, var: &'static str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr + PartialOrd + Default,
        T::Err: fmt::Display,
    {
        let v = self.parse(var, default)?;
        if v <= T::default() {
            return Err(invalid(var, "must be greater than zero"));
        }
        Ok(v)
    }

    pub(super) fn secs(&self, var: &'static str, default: u64) -> Result<Duration, ConfigError> {
        Ok(Duration::from_secs(self.positive(var, default)?))
    }

    pub(super) fn millis(&self, var: &'static str, default: u64) -> Result<Duration, ConfigError> {
        Ok(Duration::from_millis(self.positive(var, default)?))
    }

    pub(super) fn bool(&self, var: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.raw(var).map(|v| v.trim().to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) if ["1", "true", "yes", "on"].contains(&v.as_str()) => Ok(true),
            Some(v) if ["0", "false", "no", "off"].contains(&v.as_str()) => Ok(false),
            Some(_) => Err(invalid(var, "expected true or false")),
        }
    }

    pub(super) fn fee(
        &self,
        pct_var: &'static str,
        pct_default: u32,
        flat_var: &'static str,
        flat_default: u64,
    ) -> Result<FeeRule, ConfigError> {
        let BasisPoints(bps) = self.parse(pct_var, BasisPoints(pct_default))?;
        Ok(FeeRule {
            bps,
            flat_sats: self.parse(flat_var, flat_default)?,
        })
    }

    pub(super) fn token(&self, var: &'static str) -> Result<Secret, ConfigError> {
        let v = self.required(var)?;
        if v.len() < 16 {
            return Err(invalid(var, "must be at least 16 characters"));
        }
        Ok(Secret(v))
    }
}

pub(super) fn invalid(var: &'static str, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        var,
        reason: reason.to_owned(),
    }
}
