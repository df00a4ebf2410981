//! How a self-test double declares its faults: each fault, beside its doc, names the cases of
//! the catalogue it must make fail (with a phrase of the failure message) and those it may leave
//! skipped. The fault matrix of the repository's tests (`tests/support/fault_matrix.rs`) checks
//! the declarations; this fake's [`Fault`](crate::Fault)s and the widget stand-in's `--fault`
//! switches use it.

/// What one fault declares: the cases it must make fail, each with a phrase its message must
/// contain, and which cases it may leave skipped.
#[derive(Clone, Copy, Debug)]
pub struct Declared {
    /// The fault's name, as `DEC_SELFTEST_FAULTS` and the failure output spell it.
    pub fault: &'static str,
    /// (case id, phrase) pairs.
    pub breaks: &'static [(&'static str, &'static str)],
    pub skips: Skips,
}

/// Cases a fault legitimately makes inapplicable (it removes what they need).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skips {
    None,
    /// These cases may skip (whatever the reason).
    Cases(&'static [&'static str]),
    /// The fault takes delayed events away altogether: every case it does not break may skip as
    /// "delayed events are not offered".
    NotOffered,
}

impl Skips {
    /// Whether a case `id` that skipped with `message` is one this fault may leave skipped.
    pub fn allow(self, id: &str, message: Option<&str>) -> bool {
        match self {
            Skips::None => false,
            Skips::Cases(ids) => ids.contains(&id),
            Skips::NotOffered => {
                message.is_some_and(|m| m.starts_with("delayed events are not offered"))
            }
        }
    }
}

/// Declares an enum of faults, each with what it breaks written beside its doc:
///
/// ```ignore
/// declare_faults! {
///     pub enum Fault {
///         /// What the fault does.
///         SendEarly {
///             breaks: [
///                 "msc4140.timing.message_not_sent_early" => "sent before its delay",
///             ],
///         },
///         /// A fault with a command-line name of its own, and cases it may leave skipped.
///         CapabilityMissing = "capability-missing" {
///             breaks: [ /* ... */ ],
///             skips: Skips::Cases(&["msc4140.limits.over_limit_is_refused"]),
///         },
///     }
/// }
/// ```
///
/// and gives it `ALL` (declaration order), `name()` (the given name, else the variant's) and
/// `declared()` (a [`Declared`]). A fault with `breaks: []` is not run by the matrix; say why
/// beside it.
#[macro_export]
macro_rules! declare_faults {
    (
        $(#[$enum_meta:meta])*
        $vis:vis enum $Enum:ident {
            $(
                $(#[$meta:meta])*
                $variant:ident $(= $name:literal)? {
                    breaks: [$($case:literal => $phrase:literal),* $(,)?]
                    $(, skips: $skips:expr)?
                    $(,)?
                }
            ),* $(,)?
        }
    ) => {
        $(#[$enum_meta])*
        $vis enum $Enum {
            $($(#[$meta])* $variant,)*
        }

        impl $Enum {
            /// Every fault, in declaration order.
            pub const ALL: &'static [$Enum] = &[$($Enum::$variant),*];

            /// The fault's name (`DEC_SELFTEST_FAULTS`, failure output, command lines).
            pub fn name(self) -> &'static str {
                match self {
                    $($Enum::$variant => declare_faults!(@name $variant $($name)?),)*
                }
            }

            /// The cases this fault must break (with the phrase each message must contain), and
            /// those it may leave skipped: declared beside each variant.
            pub fn declared(self) -> $crate::Declared {
                #[allow(unused_imports)]
                use $crate::Skips;
                match self {
                    $($Enum::$variant => $crate::Declared {
                        fault: self.name(),
                        breaks: &[$(($case, $phrase)),*],
                        skips: declare_faults!(@skips $($skips)?),
                    },)*
                }
            }
        }
    };
    (@name $variant:ident $name:literal) => { $name };
    (@name $variant:ident) => { stringify!($variant) };
    (@skips $skips:expr) => { $skips };
    (@skips) => { Skips::None };
}
