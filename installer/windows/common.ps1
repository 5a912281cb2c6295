# Shared by install.ps1 and uninstall.ps1 (dot-sourced after their param block sets $InstallDir).
# Every step goes through Confirm-Step, so -WhatIf prints it instead of doing it.

$CameraName = "FER Cam"
$ManifestPath = Join-Path $InstallDir "installed-files.txt"
$StartMenuLink = Join-Path ([Environment]::GetFolderPath("Programs")) "FER Cam.lnk"
$StartupLink = Join-Path ([Environment]::GetFolderPath("Startup")) "FER Cam.lnk"

# True when the step should run; under -WhatIf PowerShell prints "What if: ..." and returns false.
function Confirm-Step([string]$Target, [string]$Action) {
    return $script:Cmdlet.ShouldProcess($Target, $Action)
}

# Runs an external program (unless -WhatIf) and stops on a non-zero exit code.
function Invoke-Step([string]$Exe, [string[]]$Arguments) {
    if (-not (Confirm-Step $Exe ("Run: " + ($Arguments -join " ")))) { return }
    & $Exe @Arguments | Out-Host  # keep its output out of the function's return value
    if ($LASTEXITCODE -ne 0) { throw "$Exe $($Arguments -join ' ') failed with exit code $LASTEXITCODE" }
}

function Test-Admin {
    $identity = [Security.Principal.WindowsPrincipal][Security.Principal.WindowsIdentity]::GetCurrent()
    return $identity.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)
}

# Unity Capture ships UnityCaptureFilter32bit.dll / ...64bit.dll; builds of it are also named ...32.dll / ...64.dll.
function Find-UnityCaptureDll([string]$Dir, [string]$Bits) {
    foreach ($name in "UnityCaptureFilter${Bits}bit.dll", "UnityCaptureFilter${Bits}.dll") {
        $path = Join-Path $Dir $name
        if (Test-Path $path) { return @{ Path = (Resolve-Path $path).Path; Bits = $Bits } }
    }
    if ($Bits -eq "32") {
        Write-Warning "No 32-bit Unity Capture DLL in ${Dir}: 32-bit apps will not see the camera."
        return
    }
    throw "No UnityCaptureFilter64bit.dll in $Dir (pass the Install folder of Unity Capture)"
}

# regsvr32 of the DLL's bitness; DirectShow filters register machine-wide, so it runs elevated (UAC prompt).
function Invoke-Regsvr32([string]$Dll, [string]$Bits, [string[]]$Flags, [string]$Suffix = "") {
    $is64 = [Environment]::Is64BitOperatingSystem
    $folder = if ($Bits -eq "32" -and $is64) { "SysWOW64" } elseif ($is64 -and -not [Environment]::Is64BitProcess) { "Sysnative" } else { "System32" }
    $exe = Join-Path $env:WINDIR "$folder\regsvr32.exe"
    $argLine = (@($Flags) + "`"$Dll`"" + @($Suffix | Where-Object { $_ })) -join " "
    if (-not (Confirm-Step $Dll "$exe $argLine (as administrator)")) { return }
    $elevate = @{}
    if (-not (Test-Admin)) { $elevate = @{ Verb = "RunAs" } }
    $process = Start-Process -FilePath $exe -ArgumentList $argLine -Wait -PassThru @elevate
    if ($process.ExitCode -ne 0) { throw "regsvr32 $argLine failed with exit code $($process.ExitCode)" }
}
